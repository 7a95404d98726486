"""The edges of the flow: sources that read frames (images, folders, video files, streams),
sinks that write colourised frames (images, folders, video with audio passed through), atomic
writes and URL handling.  Only this package talks to PyAV/FFmpeg and translates its errors."""
