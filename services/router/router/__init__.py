"""router: assigns qualified leads to reps and delivers signed webhooks to sales systems."""
