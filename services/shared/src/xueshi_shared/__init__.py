"""Library shared by the three Xueshi services: settings, database, errors, auth, observability."""
