"""The dialer's FastAGI service for Asterisk's dialplan: inbound calls, the IVR, played messages."""
