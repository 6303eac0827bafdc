"""Project-wide secrets: encrypted at rest, handed to functions as environment variables."""
