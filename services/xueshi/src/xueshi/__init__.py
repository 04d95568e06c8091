"""The composition of Xueshi: the one package that knows all three services (their apps, their migration
histories, where their tables live on Citus) and the `xueshi` command that runs them. The services and
`xueshi_shared` never import it."""
