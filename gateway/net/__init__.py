"""Network helpers: DSCP marking per traffic class."""
