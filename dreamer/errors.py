"""User-facing errors.

A `UserError` is a problem with what the user asked for (bad prompt, unknown name, wrong config
type, unwritable folder, corrupt checkpoint). The CLI prints its one-line message and exits 2;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input; the message names the problem and the fix."""

    exit_code = 2


class TrainingDiverged(Exception):
    """The loss became NaN/inf; the last good checkpoint is kept. CLI exit code 1."""

    exit_code = 1


class Interrupted(Exception):
    """The user pressed Ctrl-C; a checkpoint was saved. CLI exit code 130."""

    exit_code = 130


class DiskFull(OSError):
    """A write found no space left on its device (ENOSPC or a disk quota). The file being written was
    removed and the one it would have replaced is intact, so `--resume` continues from the last
    checkpoint once space is freed. CLI exit code 28 (ENOSPC)."""

    exit_code = 28


class OutOfVocabularyWarning(UserWarning):
    """The prompt has words an embedded prior (`tiny`) does not know; the run goes on, but will
    not be the object asked for. `warnings.simplefilter("error", OutOfVocabularyWarning)` makes it
    an error."""
