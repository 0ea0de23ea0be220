"""Helpers the tests, the demo and the soak share: comparing a target with the sandbox
(verify), and the reliability scenarios (chaos). They use both the provider and the sandbox,
which is why they live here and not in either package."""
