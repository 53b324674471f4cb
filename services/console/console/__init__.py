"""console: the web page where ops, sales and marketing see and steer the pipeline."""
