"""The simulated AKS cluster used by --demo and by the tests."""
