"""The command-line front ends: `emotion-recognition`, `emotion-train` and `emotion-evaluate` once the
package is installed, or recognition.py, train.py and evaluate.py in a clone. Each parses its options,
calls the library, and turns the library's errors into one line of advice in terms of its options."""
