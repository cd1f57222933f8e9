"""Data retention (RET-1, RET-2): how long each category of records is kept, the daily purge, "delete all"."""
