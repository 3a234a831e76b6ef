"""The pure core: the session state machine, the clock and scheduling decisions.

Nothing under this package imports a web framework, a database driver or Redis.
"""
