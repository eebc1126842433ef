//! S-expressions with their positions: atoms and lists, `;` comments, any whitespace.

/// Lists nested deeper than this are refused (the parser and the tree's destructor
/// recurse once per level).
const MAX_DEPTH: usize = 1000;

/// One S-expression and where it starts (line, column; 1-based).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sexp {
    Atom(String, usize, usize),
    List(Vec<Sexp>, usize, usize),
}

impl Sexp {
    pub(crate) fn pos(&self) -> (usize, usize) {
        match self {
            Sexp::Atom(_, l, c) | Sexp::List(_, l, c) => (*l, *c),
        }
    }
}

/// The top-level forms of `text`; `Err((line, col, message))` when unbalanced.
pub(crate) fn parse_all(text: &str) -> std::result::Result<Vec<Sexp>, (usize, usize, String)> {
    let mut stack: Vec<(Vec<Sexp>, usize, usize)> = Vec::new();
    let mut top = Vec::new();
    let (mut line, mut col) = (1usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        col += 1;
        match ch {
            '\n' => {
                line += 1;
                col = 0;
            }
            ';' => {
                while let Some(&c) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            '(' => {
                if stack.len() >= MAX_DEPTH {
                    return Err((line, col, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                stack.push((Vec::new(), line, col))
            }
            ')' => {
                let (items, l, c) = stack
                    .pop()
                    .ok_or((line, col, "unbalanced ')'".to_string()))?;
                let e = Sexp::List(items, l, c);
                match stack.last_mut() {
                    Some(p) => p.0.push(e),
                    None => top.push(e),
                }
            }
            c if c.is_whitespace() => {}
            _ => {
                let (l, c0) = (line, col);
                let mut s = String::new();
                s.push(ch);
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == ';' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                    col += 1;
                }
                let e = Sexp::Atom(s, l, c0);
                match stack.last_mut() {
                    Some(p) => p.0.push(e),
                    None => top.push(e),
                }
            }
        }
    }
    if let Some((_, l, c)) = stack.pop() {
        return Err((l, c, "this '(' is never closed".to_string()));
    }
    Ok(top)
}
