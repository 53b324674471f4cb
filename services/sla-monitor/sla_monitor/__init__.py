"""sla-monitor: a clock at every handoff, and one alert to ops when a lead goes unworked."""
