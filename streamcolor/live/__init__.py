"""Live cameras: ``streamcolor live``.  A reader per camera keeping its newest frame and
reconnecting forever (:mod:`.camera`), one model for all of them (:mod:`.runner`),
recordings in complete segments (:mod:`.recorder`), and a browser view with health and
metrics (:mod:`.server`, :mod:`.view`, :mod:`.stats`)."""
