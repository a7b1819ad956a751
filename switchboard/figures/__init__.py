"""Call-center figures: reports, staffing, the summary (read as sb_reports)."""
