# Hypothesis keeps its files in the working directory (.hypothesis/) unless told
# otherwise: the tests leave nothing in the source tree, so they go to a temporary folder.
import os as _os
import tempfile as _tempfile

_os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                       _os.path.join(_tempfile.gettempdir(), "entryhw-hypothesis"))
