"""Video calls: what a participant's browser needs to join a session's call."""

from sessionclock.video.base import CallAccess, VideoProvider
from sessionclock.video.builtin import BuiltinProvider, turn_credentials
from sessionclock.video.url_template import UrlTemplateProvider

__all__ = [
    "BuiltinProvider",
    "CallAccess",
    "UrlTemplateProvider",
    "VideoProvider",
    "turn_credentials",
]
