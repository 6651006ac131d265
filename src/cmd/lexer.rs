//! Splitting a stackcmd string into commands and words.
//!
//! The reference library hands the string to libexecs, which splits it without a
//! shell. The rules (FACTS.md) are reproduced here because scripts written for the
//! reference rely on them: `;` separates commands (and `,`, which the man page
//! promises); space, tab and newline separate words; single quotes are literal;
//! double quotes keep a backslash and protect the character after it; an unquoted
//! backslash protects the next character; a quote left open closes at the end.
//! A separator never makes an empty command.
//!
//! libexecs also expands an unquoted `$NAME` at the start of a word from the
//! environment; this module is pure, so `$` is an ordinary character here.

/// Where the scanner is within a word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Single,
    Double,
}

/// Splits a stackcmd string into commands, each a list of words (argv).
///
/// Blank strings and separators alone give no commands at all.
pub fn split_commands(s: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut argv: Vec<String> = Vec::new();
    // A quoted empty string is still a word, so "in a word" is tracked apart from
    // the word's text.
    let mut word: Option<String> = None;
    let mut mode = Mode::Plain;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (mode, c) {
            (Mode::Single, '\'') | (Mode::Double, '"') => mode = Mode::Plain,
            (Mode::Single, _) => word.get_or_insert_with(String::new).push(c),
            (Mode::Double, '\\') => {
                let w = word.get_or_insert_with(String::new);
                w.push('\\');
                w.extend(chars.next());
            }
            (Mode::Double, _) => word.get_or_insert_with(String::new).push(c),
            (Mode::Plain, '\'') => {
                word.get_or_insert_with(String::new);
                mode = Mode::Single;
            }
            (Mode::Plain, '"') => {
                word.get_or_insert_with(String::new);
                mode = Mode::Double;
            }
            (Mode::Plain, '\\') => word.get_or_insert_with(String::new).extend(chars.next()),
            (Mode::Plain, ' ' | '\t' | '\n') => argv.extend(word.take()),
            (Mode::Plain, ';' | ',') => {
                argv.extend(word.take());
                if !argv.is_empty() {
                    commands.push(std::mem::take(&mut argv));
                }
            }
            (Mode::Plain, _) => word.get_or_insert_with(String::new).push(c),
        }
    }
    argv.extend(word);
    if !argv.is_empty() {
        commands.push(argv);
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::split_commands;

    fn split(s: &str) -> Vec<Vec<String>> {
        split_commands(s)
    }

    fn cmds(expected: &[&[&str]]) -> Vec<Vec<String>> {
        expected
            .iter()
            .map(|c| c.iter().map(|w| w.to_string()).collect())
            .collect()
    }

    #[test]
    fn words_and_commands() {
        assert_eq!(
            split("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0"),
            cmds(&[
                &["/bin/ip", "link", "set", "vde0", "up"],
                &["/bin/ip", "addr", "add", "10.0.0.1/24", "dev", "vde0"],
            ])
        );
        assert_eq!(split("a\tb\nc"), cmds(&[&["a", "b", "c"]]));
        assert_eq!(split("a,b;c"), cmds(&[&["a"], &["b"], &["c"]]));
    }

    #[test]
    fn blank_and_separators_make_no_commands() {
        assert!(split("").is_empty());
        assert!(split("   \t\n").is_empty());
        assert!(split(";;, ;").is_empty());
        assert_eq!(split(";a;;b;"), cmds(&[&["a"], &["b"]]));
        assert_eq!(split("a ; ; b ,"), cmds(&[&["a"], &["b"]]));
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(split("'a b;c,d'"), cmds(&[&["a b;c,d"]]));
        assert_eq!(split(r#"'a\b'"#), cmds(&[&[r"a\b"]]));
        assert_eq!(split(r#""a\"b""#), cmds(&[&[r#"a\"b"#]]));
        assert_eq!(split(r#""a;b" c"#), cmds(&[&["a;b", "c"]]));
        assert_eq!(split(r"a\;b\,c\ d"), cmds(&[&["a;b,c d"]]));
        assert_eq!(split(r#"x"y z"w"#), cmds(&[&["xy zw"]]));
        assert_eq!(split("'' b"), cmds(&[&["", "b"]]));
        assert_eq!(split(r#""""#), cmds(&[&[""]]));
        // Unterminated quotes close at the end of the string.
        assert_eq!(split("'a b"), cmds(&[&["a b"]]));
        assert_eq!(split("\"a b;c"), cmds(&[&["a b;c"]]));
        // A trailing backslash protects nothing and disappears.
        assert_eq!(split("a\\"), cmds(&[&["a"]]));
        assert_eq!(split("\\"), cmds(&[&[""]]));
        // An IPv6 address has colons, never commas.
        assert_eq!(
            split("/bin/ip -6 addr add 2001:db8::1/64 dev vde0"),
            cmds(&[&[
                "/bin/ip",
                "-6",
                "addr",
                "add",
                "2001:db8::1/64",
                "dev",
                "vde0"
            ]])
        );
    }
}
