"""Pure pieces of the verification service: encodings and the shapes of documents. No I/O."""
