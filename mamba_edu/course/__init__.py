"""The course module kit: student notebooks, an instructor pack, lecture slides, and a grader.

Glossary
    chapter      a notebook notebooks/NN_name.ipynb, known by its number NN
    exercise     a function the learner writes in a cell tagged `exercise`; its name equals the
                 reference solution's name in notebooks/solutions/NN_name.py, whose EXERCISES list
                 pairs it with its `check_*` function
    syllabus     docs/course/syllabus.yml: four lectures and three labs, each with its chapters,
                 app pages and objectives; the one place where the course's schedule is written
    student build   the chapters as they ship (stubs, checks), outputs stripped
    instructor pack the same chapters with each reference solution written into its exercise cell
    slides       one reveal.js deck per lecture, assembled from the cells tagged `slide` of the
                 lecture's chapters (executed, figures at their default settings)
    grading      each student's notebooks run in a sandboxed kernel of their own with time and memory
                 limits; the checks record the student's answers there, and the grader computes every
                 verdict in its own process by replaying the checks (docs/course/threat-model.md)

`mamba-edu course build OUT` and `mamba-edu course grade SUBMISSIONS` (see `mamba_edu.course.cli`).
Nothing here is imported by the library: the modules import Jupyter's packages (nbformat, nbclient,
nbconvert) only when a command runs.
"""
