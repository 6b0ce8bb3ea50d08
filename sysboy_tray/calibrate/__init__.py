"""The needle calibration window: the editor (no screen needed) and its thin Tk view."""
