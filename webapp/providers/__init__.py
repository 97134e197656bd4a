"""Who carries a message: Vonage (the real one), the embedded simulator, and SMTP for email."""
