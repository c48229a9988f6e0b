"""The cartwise Pulumi program's components; ``program.deploy`` builds the whole system."""
