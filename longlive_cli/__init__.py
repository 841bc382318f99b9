"""longlive-cli: long video generation from timed-prompt storyboards with LongLive."""

__version__ = "0.1.0"
