"""The outbound way of a message: checks, placeholders, segments, routing, credits, dispatch."""
