"""What the user sees: the overlay, the heat map and the HUD row with the AI-state badge."""
