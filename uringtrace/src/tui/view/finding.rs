//! The finding screen: what was found, its evidence, the fix, and the rule's long
//! explanation (the text of `uringtrace explain RULE`).

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::analyzer::finding::Finding;
use crate::output::table;
use crate::tui::app::App;
use crate::tui::format::{human_ns, who};
use crate::tui::theme::Theme;

use super::main_screen::{occurrences, severity_tag};

/// Splits `s` into lines of at most `width` characters, at spaces where possible;
/// continuation lines get `indent` more spaces (so wrapped evidence stays readable).
pub fn wrap(s: &str, width: usize, indent: usize) -> Vec<String> {
    let width = width.max(indent + 8);
    let lead = s.len() - s.trim_start().len();
    let mut out = Vec::new();
    let mut line = String::new();
    for word in s.trim_start().split(' ') {
        let pad = if out.is_empty() { lead } else { lead + indent };
        if line.is_empty() {
            line = format!("{}{word}", " ".repeat(pad));
        } else if line.chars().count() + 1 + word.chars().count() <= width {
            line.push(' ');
            line.push_str(word);
        } else {
            out.push(std::mem::take(&mut line));
            line = format!("{}{word}", " ".repeat(lead + indent));
        }
        // A word longer than the line: cut it.
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            let rest: String = line.chars().skip(width).collect();
            out.push(head);
            line = format!("{}{rest}", " ".repeat(lead + indent));
        }
    }
    out.push(line);
    out
}

fn wrapped(out: &mut Vec<Line<'static>>, s: &str, style: Style, width: usize, indent: usize) {
    out.extend(
        wrap(s, width, indent)
            .into_iter()
            .map(|l| Line::styled(l, style)),
    );
}

/// The screen's text for a `width`-column pane, one Line per screen line (so the
/// count is what scrolling needs).
pub fn text_lines(f: &Finding, t: Theme, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    out.push(Line::from(vec![
        Span::styled(
            format!("{} ", severity_tag(f.severity)),
            t.severity(f.severity),
        ),
        Span::styled(f.rule.slug(), t.value()),
        Span::styled(format!("  seen {}×", occurrences(f)), t.label()),
    ]));
    let mut who_line = Vec::new();
    if f.pid != 0 {
        who_line.push(Span::styled("pid ", t.label()));
        who_line.push(Span::raw(who(f.pid, &f.comm)));
    }
    if f.ring != 0 {
        who_line.push(Span::styled("  ring ", t.label()));
        who_line.push(Span::raw(f.ring_hex()));
    }
    if !who_line.is_empty() {
        out.push(Line::from(who_line));
    }
    wrapped(&mut out, &f.message, Style::new(), width, 2);
    if f.inconclusive {
        out.push(Line::styled(
            "inconclusive: events were lost, a problem may hide in them",
            t.error(),
        ));
    }
    let ev = &f.evidence;
    if !ev.facts.is_empty() || !ev.requests.is_empty() {
        out.push(Line::raw(""));
        out.push(Line::styled("Evidence", t.title()));
        for fact in &ev.facts {
            let (k, v) = (&fact.name, fact.value.to_string());
            // Facts can be long lists (user_data of every overflowed CQE): wrap them.
            let v = v.replace(',', ", ");
            wrapped(&mut out, &format!("  {k}: {v}"), Style::new(), width, 4);
        }
        if ev.last_ns > ev.first_ns {
            out.push(Line::from(vec![
                Span::styled("  span: ".to_string(), t.label()),
                Span::raw(human_ns(ev.last_ns - ev.first_ns)),
            ]));
        }
        if !ev.requests.is_empty() {
            let rows: Vec<Vec<String>> = ev
                .requests
                .iter()
                .map(|r| {
                    vec![
                        format!("{:#x}", r.user_data),
                        r.opcode_name(),
                        r.result_text(),
                        r.role.clone(),
                    ]
                })
                .collect();
            let text = table(&["user_data", "opcode", "result", "role"], &rows, "  ");
            for (i, line) in text.lines().enumerate() {
                let style = match i
                    .checked_sub(1)
                    .and_then(|r| ev.requests.get(r))
                    .map(|r| r.role.as_str())
                {
                    None => t.header_row(),
                    Some("breaker") => t.breaker(),
                    Some("cancelled") => t.cancelled(),
                    Some(_) => Default::default(),
                };
                wrapped(&mut out, line, style, width, 4);
            }
        }
    }
    if !f.fix.is_empty() {
        out.push(Line::raw(""));
        out.push(Line::styled("Fix", t.title()));
        wrapped(&mut out, &format!("  {}", f.fix), Style::new(), width, 2);
    }
    out.push(Line::raw(""));
    out.push(Line::from(vec![
        Span::styled("Explanation", t.title()),
        Span::styled(format!("  (uringtrace explain {})", f.rule), t.label()),
    ]));
    for l in f.rule.rule().explanation.lines() {
        wrapped(&mut out, &format!("  {l}"), Style::new(), width, 0);
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border(true))
        .title(Span::styled(" Finding  (Esc back, j/k scroll) ", t.title()));
    let Some(f) = &app.ui.open_finding else {
        frame.render_widget(Paragraph::new("no finding selected").block(block), area);
        return;
    };
    let lines = text_lines(f, t, area.width.saturating_sub(2) as usize);
    let inner_h = area.height.saturating_sub(2) as usize;
    // Clamp here, not in the state: the view alone knows its height.
    let max_scroll = lines.len().saturating_sub(inner_h);
    let scroll = (app.ui.scroll as usize).min(max_scroll) as u16;
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("  aaa bbb ccc", 9, 2), ["  aaa bbb", "    ccc"]);
        assert_eq!(wrap("x", 20, 0), ["x"]);
        let long = "a".repeat(25);
        let w = wrap(&long, 10, 0);
        assert!(w.iter().all(|l| l.chars().count() <= 10), "{w:?}");
        assert_eq!(w.concat().replace(' ', ""), long);
    }
}
