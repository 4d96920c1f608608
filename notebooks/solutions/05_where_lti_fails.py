"""Reference solutions for notebooks/05_where_lti_fails.ipynb, and plausible wrong answers the checks must reject."""

import torch

from mamba_edu.exercises.tasks import check_answer_accuracy, check_copy_by_content, check_induction_lookup

# ----------------------------------------------------------------------------------------------
# Exercise 1: selective copying by content
# ----------------------------------------------------------------------------------------------


def copy_by_content(tokens, n_data):
    """Keep the tokens that are data (id >= 2), in order of position."""
    is_data = tokens >= 2                                      # (b, T): noise is 0, markers are 1
    return tokens[is_data].reshape(tokens.shape[0], n_data)   # (b, k): row-major order keeps positions in order


def copy_by_content_sorted(tokens, n_data):
    """Wrong: sorts the data tokens by value instead of keeping their order."""
    return tokens[tokens >= 2].reshape(tokens.shape[0], n_data).sort(dim=-1).values


def copy_by_position(tokens, n_data):
    """Wrong (what a fixed, position-based rule does): reads the last n_data positions before the markers."""
    L = tokens.shape[1] - n_data
    return tokens[:, L - n_data:L]


def copy_by_content_nonzero(tokens, n_data):
    """Wrong: takes the LAST n_data non-noise tokens, which are the markers."""
    nz = tokens[tokens != 0].reshape(tokens.shape[0], -1)
    return nz[:, -n_data:]


# ----------------------------------------------------------------------------------------------
# Exercise 2: induction heads by lookup
# ----------------------------------------------------------------------------------------------


def induction_lookup(tokens):
    """The token right after the first special token (id 0) of each row."""
    first = (tokens == 0).int().argmax(dim=1)                  # (b,): argmax returns the first maximum
    return tokens.gather(1, (first + 1)[:, None])[:, 0]        # (b,)


def induction_lookup_before(tokens):
    """Wrong: the token BEFORE the trigger."""
    first = (tokens == 0).int().argmax(dim=1)
    return tokens.gather(1, (first - 1).clamp(min=0)[:, None])[:, 0]


def induction_lookup_last_trigger(tokens):
    """Wrong: looks after the LAST special token (the query itself), wrapping to the start."""
    last = tokens.shape[1] - 1 - (tokens.flip(1) == 0).int().argmax(dim=1)
    return tokens.gather(1, ((last + 1) % tokens.shape[1])[:, None])[:, 0]


def induction_lookup_most_frequent(tokens):
    """Wrong: guesses the most frequent ordinary token."""
    return torch.stack([row[row != 0].mode().values for row in tokens])


# ----------------------------------------------------------------------------------------------
# Exercise 3: token and sequence accuracy on the answer positions
# ----------------------------------------------------------------------------------------------


def answer_accuracy(logits, targets):
    """Fractions of right answers, and of rows whose answers are all right, over targets != -100."""
    ask = targets != -100                                      # (b, T)
    right = (logits.argmax(-1) == targets) & ask               # (b, T)
    token = right.sum().item() / ask.sum().item()
    sequence = (right.sum(1) == ask.sum(1)).float().mean().item()
    return token, sequence


def answer_accuracy_all_positions(logits, targets):
    """Wrong: counts every position, so the ignored ones dilute the accuracy."""
    right = logits.argmax(-1) == targets
    return right.float().mean().item(), right.all(1).float().mean().item()


def answer_accuracy_mean_of_rows(logits, targets):
    """Wrong: the sequence accuracy is the mean token accuracy of the rows, not 'all right'."""
    ask = targets != -100
    right = (logits.argmax(-1) == targets) & ask
    return right.sum().item() / ask.sum().item(), (right.sum(1) / ask.sum(1)).mean().item()


def answer_accuracy_percent(logits, targets):
    """Wrong: percentages instead of fractions."""
    token, sequence = answer_accuracy(logits, targets)
    return 100 * token, 100 * sequence


EXERCISES = [
    (check_copy_by_content, copy_by_content, [copy_by_content_sorted, copy_by_position, copy_by_content_nonzero]),
    (check_induction_lookup, induction_lookup,
     [induction_lookup_before, induction_lookup_last_trigger, induction_lookup_most_frequent]),
    (check_answer_accuracy, answer_accuracy,
     [answer_accuracy_all_positions, answer_accuracy_mean_of_rows, answer_accuracy_percent]),
]
