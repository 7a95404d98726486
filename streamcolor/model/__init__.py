"""The model stage: pre/post-processing around a runtime that maps luma batches to chroma
(:mod:`.colorizer`), weights as records (:mod:`.weights`), the network registry
(:mod:`.networks`) and the runtime seam (:mod:`.runtime`)."""
