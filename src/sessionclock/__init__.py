"""sessionclock: one clock and one lobby for booked 1:1 video sessions."""

__version__ = "0.1.0"
