"""Call recording (REC-1..3): policy, live recording of connected calls, pauses, MP3 files."""
