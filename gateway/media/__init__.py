"""Media core: Units flow from a source through a Channel's Tracks to Readers."""
