"""nvdiffrast renderer for texkit (registered as ``nvdiffrast``)."""
