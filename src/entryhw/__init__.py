"""entryhw: the Entry hardware bridge server on Twisted and Autobahn."""

__version__ = "0.1.0"
