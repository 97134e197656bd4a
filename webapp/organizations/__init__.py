"""An organisation's own settings and the rules on changing them."""
