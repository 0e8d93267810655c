"""findimage: search a team's shared image library by text or by example image."""
