"""The search page: a front end beside the Slack app, served by `findimage web`."""
