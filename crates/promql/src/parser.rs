//! Parser (lexer, parser, function table, formatter).
