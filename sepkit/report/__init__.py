"""Pictures and pages for people: spectrogram PNGs (drawn by matplotlib) and small HTML reports."""
