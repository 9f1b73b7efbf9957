"""The command line: the parser, the commands and the hub commands. Commands display what lower floors decide."""
