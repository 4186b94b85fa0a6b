"""Small helpers every room shares: shortening text for one-line messages and bounding tool output."""
