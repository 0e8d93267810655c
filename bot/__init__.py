"""The Slack app and its rendering: Bolt, the HTTP server, workers, Block Kit, previews."""
