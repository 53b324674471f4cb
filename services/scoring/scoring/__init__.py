"""scoring: lead profiles, fit and engagement scores, and the demand-waterfall stage machine."""
