"""intake: the HTTP door into leadrelay; validates, normalises identity and publishes to Kafka."""
