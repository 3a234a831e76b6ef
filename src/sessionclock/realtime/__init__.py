"""Pushed state: live connections, presence, and the frames they carry."""
