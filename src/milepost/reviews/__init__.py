"""Two-sided reviews of ended orders — completed or cancelled."""
