//! The toolkit in its habitat: install and uninstall, the tmux setup, the shell helpers, the
//! systemd units and the crontab example.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use util::{Env, describe, wait_for};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bins_dir() -> PathBuf {
    util::bin("af-spawn").parent().unwrap().to_path_buf()
}

/// Runs a script with HOME (and tmux's socket directory) inside the test's world, never the
/// user's.
fn script(env: &Env, home: &Path, script: &str, args: &[&str]) -> std::process::Output {
    let tmp = home.join("tmux-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut c = Command::new("bash");
    env.apply(&mut c);
    c.arg(repo().join(script)).args(args).env("HOME", home).env("TMUX_TMPDIR", &tmp).env_remove("XDG_CONFIG_HOME");
    c.env("AF_INSTALL_FROM", bins_dir());
    c.output().unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn install_is_idempotent_and_uninstall_removes_what_it_put() {
    let env = Env::new();
    let prefix = env.path("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::write(prefix.join("bin/mine"), "the user's own file").unwrap();
    for _ in 0..2 {
        let out = script(&env, &env.path("home"), "scripts/install", &["--prefix", prefix.to_str().unwrap()]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    for p in util::PROGRAMS {
        let installed = prefix.join("bin").join(p);
        let v = Command::new(&installed).arg("--version").output().unwrap();
        assert!(v.status.success(), "{p}");
        assert!(prefix.join(format!("share/man/man1/{p}.1")).is_file());
        assert!(prefix.join(format!("share/bash-completion/completions/{p}")).is_file());
        assert!(prefix.join(format!("share/zsh/site-functions/_{p}")).is_file());
        assert!(prefix.join(format!("share/fish/vendor_completions.d/{p}.fish")).is_file());
    }
    assert!(prefix.join("share/man/man5/af-spool.5").is_file());
    assert!(prefix.join("share/man/man7/agentflow.7").is_file());
    let out =
        script(&env, &env.path("home"), "scripts/install", &["--prefix", prefix.to_str().unwrap(), "--uninstall"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(files_under(&prefix), vec![prefix.join("bin/mine")], "only the user's file is left");
    let again =
        script(&env, &env.path("home"), "scripts/install", &["--prefix", prefix.to_str().unwrap(), "--uninstall"]);
    assert_eq!(again.status.code(), Some(3), "nothing to uninstall");
    let bad = script(&env, &env.path("home"), "scripts/install", &["--bogus"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// scripts/install builds where cargo is told to (CARGO_TARGET_DIR here, a directory of the test's
/// own, never ./target) and installs what cargo reports it built. The build is the debug profile
/// through a link to this test run's own target directory, so that cargo finds it up to date
/// instead of building everything again; the path cargo reports is the link's.
#[test]
fn install_builds_with_cargo_wherever_its_target_dir_is() {
    let env = Env::new();
    let prefix = env.path("prefix");
    let target = env.path("elsewhere/target");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    // bins_dir() is <target dir>/debug.
    std::os::unix::fs::symlink(bins_dir().parent().unwrap(), &target).unwrap();
    let run = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new("bash");
        env.apply(&mut c);
        c.arg(repo().join("scripts/install")).args(args).env("CARGO_TARGET_DIR", &target);
        c.env_remove("AF_INSTALL_FROM");
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[], &["--prefix", prefix.to_str().unwrap(), "--debug"]);
    assert!(out.status.success(), "{}", describe(&out));
    for p in util::PROGRAMS {
        let installed = std::fs::read(prefix.join("bin").join(p)).unwrap();
        assert!(installed == std::fs::read(util::bin(p)).unwrap(), "{p} is the one cargo built in CARGO_TARGET_DIR");
    }
    let built = Command::new("bash")
        .arg(repo().join("scripts/build"))
        .arg("--debug")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", describe(&built));
    assert_eq!(String::from_utf8_lossy(&built.stdout).trim(), target.join("debug").to_str().unwrap());
    // A failing step says what failed, and nothing is installed.
    let empty = env.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let other = env.path("other-prefix");
    let out = run(&[("AF_INSTALL_FROM", empty.to_str().unwrap())], &["--prefix", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}/af-spawn is missing", empty.display())), "{err}");
    assert!(!other.exists(), "nothing installed");
}

#[test]
fn setup_tmux_keeps_the_users_config_and_loads_cleanly() {
    let env = Env::new();
    let home = env.path("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".tmux.conf"), "set -g mouse on\n").unwrap();
    for _ in 0..2 {
        let out = script(&env, &home, "scripts/setup-tmux.sh", &[]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    let user_conf = util::read(&home.join(".tmux.conf"));
    assert!(user_conf.starts_with("set -g mouse on\n"), "{user_conf}");
    assert_eq!(user_conf.matches("source-file").count(), 1, "added once: {user_conf}");
    // The whole configuration loads in a real tmux server, with our settings and the user's.
    let conf = home.join(".tmux.conf");
    let t = |args: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&env.socket)
            .arg("-f")
            .arg(&conf)
            .args(args)
            .env("HOME", &home)
            .output()
            .unwrap()
    };
    assert!(t(&["new-session", "-d", "-s", "probe"]).status.success());
    assert_eq!(String::from_utf8_lossy(&t(&["show", "-gv", "history-limit"]).stdout).trim(), "50000");
    assert_eq!(String::from_utf8_lossy(&t(&["show", "-gv", "mouse"]).stdout).trim(), "on");
    let keys = String::from_utf8_lossy(&t(&["list-keys"]).stdout).into_owned();
    assert!(keys.contains("af-spawn restart") && keys.contains("choose-tree"), "{keys}");
    let out = script(&env, &home, "scripts/setup-tmux.sh", &["--uninstall"]);
    assert!(out.status.success());
    assert_eq!(util::read(&home.join(".tmux.conf")), "set -g mouse on\n");
}

#[test]
fn shell_helpers_create_agents_from_templates() {
    let env = Env::new();
    let helpers = repo().join("scripts/agentflow.sh");
    let mut c = Command::new("bash");
    env.apply(&mut c);
    let path = format!("{}:{}", bins_dir().display(), std::env::var("PATH").unwrap());
    c.arg("-c")
        .arg(format!(
            ". {}; af_new_worker hw1 batch -- sh -c 'echo \"$0\"; sleep 300' \"it's here\" && af_ls --summary",
            helpers.display()
        ))
        .env("PATH", path);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 running"), "{}", describe(&out));
    let show = env.show("hw1");
    assert_eq!(show["config"]["projectId"], "batch");
    assert_eq!(show["config"]["command"], serde_json::json!(["sh", "-c", "echo \"$0\"; sleep 300", "it's here"]));
    wait_for("its output", std::time::Duration::from_secs(5), || {
        env.ok("af-spawn", &["logs", "hw1"]).contains("it's here")
    });
}

#[test]
fn systemd_units_verify_and_their_commands_exist() {
    let env = Env::new();
    let home = env.path("home");
    let out = script(&env, &home, "scripts/install", &["--prefix", home.join(".local").to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    let units: Vec<PathBuf> = std::fs::read_dir(repo().join("scripts/systemd"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "service" || x == "timer"))
        .collect();
    assert!(units.len() >= 5);
    for unit in &units {
        let text = util::read(unit);
        for exec in text.lines().filter_map(|l| l.strip_prefix("ExecStart=").or_else(|| l.strip_prefix("ExecStop="))) {
            let program = exec.split_whitespace().next().unwrap().replace("%h", home.to_str().unwrap());
            assert!(Path::new(&program).is_file(), "{}: {program} does not exist", unit.display());
        }
    }
    run_unit_commands(&env, &home, &units);
    // The rest verifies the units: without systemd-analyze, that part of this test is skipped.
    if !util::have_tool("systemd-analyze", "Debian: apt-get install systemd") {
        return;
    }
    let runtime = env.path("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    for unit in &units {
        let out = Command::new("systemd-analyze")
            .args(["verify", "--user"])
            .arg(unit)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("MANPATH", home.join(".local/share/man"))
            .output()
            .unwrap();
        let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("Command 'man "))
            .map(str::to_owned)
            .collect();
        assert!(complaints.is_empty(), "{}: {complaints:?}", unit.display());
    }
}

/// Runs every ExecStart/ExecStop of the units as systemd would (%h is the home), in this test's
/// spool and with tmux's sockets in the test's own directory: one-shot commands must finish with a
/// status the unit accepts; services must still be running a moment after they start.
fn run_unit_commands(env: &Env, home: &Path, units: &[PathBuf]) {
    let tmux_dir = home.join("tmux-tmp");
    std::fs::create_dir_all(&tmux_dir).unwrap();
    let port_free = std::net::TcpListener::bind("127.0.0.1:3000").is_ok();
    for unit in units.iter().filter(|u| u.extension().is_some_and(|x| x == "service")) {
        let text = util::read(unit);
        let oneshot = text.contains("Type=oneshot") || text.contains("Type=forking");
        let accepted: Vec<i32> = std::iter::once(0)
            .chain(
                text.lines()
                    .filter_map(|l| l.strip_prefix("SuccessExitStatus="))
                    .flat_map(|v| v.split_whitespace().filter_map(|c| c.parse().ok()).collect::<Vec<i32>>()),
            )
            .collect();
        for line in text.lines().filter(|l| l.starts_with("ExecStart=") || l.starts_with("ExecStop=")) {
            let exec = line.split_once('=').unwrap().1.replace("%h", home.to_str().unwrap());
            let words: Vec<&str> = exec.split_whitespace().collect();
            if words.contains(&"127.0.0.1:3000") && !port_free {
                eprintln!("port 3000 is taken here: not starting {exec}");
                continue;
            }
            let mut c = Command::new(words[0]);
            env.apply(&mut c);
            c.args(&words[1..]).env("HOME", home).env("TMUX_TMPDIR", &tmux_dir);
            c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap_or_else(|e| panic!("{}: cannot run {exec}: {e}", unit.display()));
            if oneshot {
                let out = child.wait_with_output().unwrap();
                let code = out.status.code().unwrap_or(-1);
                assert!(accepted.contains(&code), "{}: `{exec}` exited {code}: {}", unit.display(), describe(&out));
            } else {
                std::thread::sleep(std::time::Duration::from_millis(1500));
                let running = child.try_wait().unwrap().is_none();
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                assert!(running, "{}: `{exec}` did not keep running: {}", unit.display(), describe(&out));
            }
        }
    }
    let _ = Command::new("tmux").arg("kill-server").env("TMUX_TMPDIR", &tmux_dir).output();
}

#[test]
fn the_crontab_example_names_real_commands() {
    let text = util::read(&repo().join("scripts/systemd/crontab.example"));
    let mut seen = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let command = if words[0].starts_with('@') { &words[1..] } else { &words[5..] };
        let program = Path::new(command[0]).file_name().unwrap().to_str().unwrap();
        if program.starts_with("af-") {
            let top = Command::new(util::bin(program)).arg("--help").output().unwrap();
            if String::from_utf8_lossy(&top.stdout).contains("not built yet") {
                continue; // checked once that program lands
            }
            let help = Command::new(util::bin(program)).args([command[1], "--help"]).output().unwrap();
            assert!(help.status.success(), "crontab runs `{program} {}`, which does not exist", command[1]);
            seen += 1;
        }
    }
    assert!(seen >= 1, "at least af-spawn gc is checked");
}

#[test]
fn progress_shows_on_a_terminal_and_stays_out_of_pipelines() {
    let env = Env::new();
    let batch: String = (0..5).map(|i| format!("{{\"id\":\"pg{i}\",\"type\":\"worker\"}}\n")).collect();
    // In a pipeline: stdout has the ids, stderr nothing.
    let out = env.run("af-spawn", &["create"], Some(&batch));
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    // On a terminal (a tmux pane): the progress line appears.
    let ids: Vec<String> = (0..5).map(|i| format!("pg{i}")).collect();
    let script = format!(
        "AF_HOME={} AF_TMUX_SOCKET={} {} start {}; sleep 30",
        env.home.display(),
        env.socket,
        util::bin("af-spawn").display(),
        ids.join(" ")
    );
    assert!(env.tmux(&["new-session", "-d", "-s", "term", "-x", "200", "sh", "-c", &script]).status.success());
    wait_for("the progress line on the terminal", std::time::Duration::from_secs(15), || {
        let pane = env.tmux(&["capture-pane", "-p", "-t", "=term:"]);
        String::from_utf8_lossy(&pane.stdout).contains("starting: 5/5")
    });
}

#[test]
fn the_demo_runs_the_main_job_end_to_end() {
    let env = Env::new();
    let run = |args: &[&str]| {
        let mut c = Command::new("bash");
        env.apply(&mut c);
        c.arg(repo().join("scripts/demo")).args(args).env("AF_DEMO_FROM", bins_dir()).env("AF_DEMO_PORT", "0");
        c.output().unwrap()
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(text.matches("processed by demo-worker-").count(), 6, "six task results: {text}");
    assert!(text.contains("\"ok\":true"), "the request's answer: {text}");
    assert!(text.contains("app.py is back: print(\"hello from the service\")"), "{text}");
    // The hint to look around names the private tmux server the demo's agents run on.
    let attach = format!("tmux -L {} attach -t agent-demo-service", env.socket);
    assert!(text.contains(&attach), "{attach}: {text}");
    let url = text.lines().find_map(|l| l.strip_prefix("dashboard: ")).expect("the dashboard URL");
    // stdout is a pipe here: the URL without the token, and where the token is.
    assert!(url.starts_with("http://127.0.0.1:") && !url.contains("#token="), "{url}");
    assert!(url.ends_with(&format!("(bearer token in {}/api/token)", env.home.display())), "{url}");
    let token = format!("API token: in {}/api/token (af-api token --show prints it)", env.home.display());
    assert!(text.lines().any(|l| l == token), "the token path of the spool in use: {text}");
    // The demo's tmux server is the private one: the attach hint says so.
    let attach = format!("tmux -L {} attach -t agent-demo-service", env.socket);
    assert!(text.contains(&attach), "{text}");
    // The dashboard answers at that URL.
    let addr = url.trim_start_matches("http://").split('/').next().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    write!(s, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let ls = env.json("af-spawn", &["ls"]);
    assert_eq!(ls.as_array().unwrap().iter().filter(|a| a["status"] == "running").count(), 5, "{ls}");
    // --clean builds nothing, and needs no program on PATH: it uses those the demo ran with.
    let mut c = Command::new("bash");
    env.apply(&mut c);
    c.arg(repo().join("scripts/demo")).arg("--clean").env("PATH", "/usr/bin:/bin").env("CARGO", "/nonexistent");
    let clean = c.output().unwrap();
    assert!(clean.status.success(), "{}", describe(&clean));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("demo removed"), "{}", describe(&clean));
    assert!(env.json("af-spawn", &["ls"]).as_array().unwrap().is_empty());
    assert!(std::net::TcpStream::connect(addr).is_err(), "the dashboard is stopped");
}

/// A spool with what completion offers: two agents (project test), a subscription, a checkpoint.
fn completion_world() -> (Env, String) {
    let env = Env::new();
    env.create(
        r#"[{"id": "w1", "type": "worker", "projectId": "test"}, {"id": "w2", "type": "worker", "projectId": "test"}]"#,
    );
    env.ok("af-bus", &["subscribe", "results", "--topic", "tasks.*"]);
    let ckpt = env.ok("af-checkpoint", &["create", "w1"]).trim().to_owned();
    (env, ckpt)
}

/// Runs a shell script with the test's spool and the built programs on PATH; returns stdout.
fn shell(env: &Env, shell: &str, script: &str) -> String {
    let mut c = Command::new(shell);
    env.apply(&mut c);
    c.args(["-c", script])
        .env("PATH", format!("{}:{}", bins_dir().display(), std::env::var("PATH").unwrap_or_default()));
    let out = c.output().unwrap();
    assert!(out.status.success(), "{shell} -c {script}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What bash offers for `LINE<TAB>` with the generated completion file of `program` sourced: its
/// completion function (as `complete -p` names it) driven through COMP_WORDS and COMP_CWORD.
fn bash_completes(env: &Env, program: &str, line: &str) -> Vec<String> {
    let file = repo().join(format!("scripts/completions/{program}.bash"));
    let script = format!(
        "source '{}'\nCOMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\nread -ra COMP_WORDS <<< \"$COMP_LINE\"\n\
         [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')\nCOMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         fn=$(complete -p {program} | sed 's/.*-F \\([^ ]*\\).*/\\1/')\n\
         \"$fn\" {program} \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    shell(env, "bash", &script).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completion_offers_agents_queues_topics_and_checkpoints_from_the_spool() {
    let (env, ckpt) = completion_world();
    let stop = bash_completes(&env, "af-spawn", "af-spawn stop ");
    assert!(stop.contains(&"w1".to_owned()) && stop.contains(&"w2".to_owned()), "{stop:?}");
    assert_eq!(bash_completes(&env, "af-spawn", "af-spawn show w2"), ["w2"]);
    let queues = bash_completes(&env, "af-bus", "af-bus recv ");
    for q in ["w1", "pool:test", "results"] {
        assert!(queues.contains(&q.to_owned()), "{q} in {queues:?}");
    }
    assert!(bash_completes(&env, "af-bus", "af-bus send --to p").contains(&"pool:test".to_owned()));
    assert!(bash_completes(&env, "af-bus", "af-bus tail --topic ").contains(&"tasks.*".to_owned()));
    assert_eq!(bash_completes(&env, "af-checkpoint", "af-checkpoint diff w1 ck"), [ckpt]);
    // The hidden verb itself: nothing, and success, without a spool.
    let out = Command::new(util::bin("af-spawn"))
        .args(["complete", "agents"])
        .env("AF_HOME", env.path("no-spool-here"))
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{}", describe(&out));
    assert!(!env.path("no-spool-here").exists(), "completion made a spool");
}

#[test]
fn fish_completion_offers_agents_and_checkpoints_from_the_spool() {
    if !util::have_tool("fish", "apt-get install fish") {
        return;
    }
    let (env, ckpt) = completion_world();
    let dir = repo().join("scripts/completions");
    let complete = |line: &str, program: &str| {
        let script = format!("source '{}/{program}.fish'; complete -C '{line}'", dir.display());
        // fish prints each candidate with its description after a tab.
        shell(&env, "fish", &script).lines().map(|l| l.split('\t').next().unwrap_or("").to_owned()).collect::<Vec<_>>()
    };
    let stop = complete("af-spawn stop ", "af-spawn");
    assert!(stop.contains(&"w1".to_owned()) && stop.contains(&"w2".to_owned()), "{stop:?}");
    assert!(complete("af-bus recv ", "af-bus").contains(&"pool:test".to_owned()));
    assert!(complete("af-checkpoint diff w1 ", "af-checkpoint").contains(&ckpt));
}

/// What an interactive zsh (on a pseudo-terminal, through zsh/zpty) shows after `LINE<TAB><TAB>`
/// with the generated completion functions on its fpath: the typed line and the listing, as the
/// terminal got them (escape sequences and all), read until `until` shows or 10 s passed.
fn zsh_screen(env: &Env, line: &str, until: &str) -> String {
    let dir = repo().join("scripts/completions");
    let script = format!(
        "zmodload zsh/zpty\nzpty z zsh -f -i\n\
         zpty -w z 'PS1=\"> \"; fpath=({} $fpath); autoload -Uz compinit; compinit -u -D; setopt nolistbeep'\n\
         zpty -w -n z '{line}'$'\\t\\t'\nout=\n\
         for i in {{1..100}}; do while zpty -r -t z chunk; do out+=$chunk; done; [[ $out == *'{until}'* ]] && break; sleep 0.1; done\n\
         zpty -d z\nprint -r -- \"$out\"",
        dir.display()
    );
    shell(env, "zsh", &script)
}

#[test]
fn zsh_completion_offers_agents_and_checkpoints_from_the_spool() {
    if !util::have_tool("zsh", "apt-get install zsh") {
        return;
    }
    for p in util::PROGRAMS {
        let file = repo().join(format!("scripts/completions/_{p}"));
        let out = Command::new("zsh").arg("-n").arg(&file).output().unwrap();
        assert!(out.status.success(), "{}: {}", file.display(), describe(&out));
    }
    let (env, ckpt) = completion_world();
    let screen = zsh_screen(&env, "af-spawn stop ", "w2");
    let after = screen.split_once("af-spawn stop").map_or("", |(_, rest)| rest);
    assert!(after.contains("w1") && after.contains("w2"), "{screen:?}");
    // One candidate: zsh writes it into the line.
    let screen = zsh_screen(&env, "af-checkpoint diff w1 ", &ckpt);
    assert!(screen.contains(&ckpt), "{screen:?}");
}

/// scripts/demo-cluster of a test: removed (hosts' agents, bridges, redis-server, tmux servers)
/// whatever the test's end.
struct ClusterDemo<'a> {
    env: &'a Env,
    top: PathBuf,
}

impl ClusterDemo<'_> {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new("bash");
        self.env.apply(&mut c);
        c.arg(repo().join("scripts/demo-cluster")).args(args).env("AF_HOME", &self.top);
        c.env("AF_DEMO_FROM", bins_dir()).output().unwrap()
    }
}

impl Drop for ClusterDemo<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["--clean"]);
    }
}

#[test]
fn the_cluster_demo_meets_two_hosts_through_redis_and_cleans_up() {
    if !util::have_tool("redis-server", "apt-get install redis-server") {
        return;
    }
    let env = Env::new();
    let demo = ClusterDemo { env: &env, top: env.path("cluster") };
    let out = demo.run(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", describe(&out));
    let listed = |host: &str, id: &str| {
        text.lines().any(|l| l.split_whitespace().take(2).eq([host, id]) && l.contains("running"))
    };
    assert!(listed("alpha", "builder") && listed("beta", "gpu-1"), "ls --cluster: {text}");
    assert!(text.contains("\"stdout\":\"ran on beta by gpu-1\""), "the request's answer: {text}");
    assert!(text.contains("\"stdout\":\"pool task ran on beta by gpu-1\""), "the pool task's answer: {text}");
    assert!(text.contains("\"payload\":\"v2 is out\""), "the topic on beta: {text}");
    assert!(text.lines().any(|l| l.starts_with("ck-")), "the checkpoint's id: {text}");
    assert!(
        text.contains("gpu-1@beta stopped") && text.contains("gpu-1 on beta is now: \"status\":\"stopped\""),
        "{text}"
    );
    let pid = |f: &str| util::read(&demo.top.join(f)).trim().parse::<i32>().unwrap();
    let pids = [pid("alpha/bridge.pid"), pid("beta/bridge.pid"), pid("redis/pid")];
    let clean = demo.run(&["--clean"]);
    assert!(clean.status.success(), "{}", describe(&clean));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("demo-cluster removed"), "{}", describe(&clean));
    for p in pids {
        assert!(!Path::new(&format!("/proc/{p}")).exists(), "process {p} is left behind");
    }
    for host in ["alpha", "beta"] {
        let ls = Command::new("tmux").args(["-L", &format!("{}-{host}", env.socket), "ls"]).output().unwrap();
        assert!(!ls.status.success(), "the tmux server of {host} is stopped");
    }
}

/// The fields of one journald native-protocol datagram: `NAME=value` lines, or for a value that
/// may hold newlines `NAME`, a newline, its length (u64 little-endian), the value and a newline.
fn journal_fields(mut rest: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let nl = rest.iter().position(|b| *b == b'\n').expect("a field ends in a newline");
        let line = &rest[..nl];
        let name_of = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        match line.iter().position(|b| *b == b'=') {
            Some(eq) => {
                out.push((name_of(&line[..eq]), line[eq + 1..].to_vec()));
                rest = &rest[nl + 1..];
            }
            None => {
                let len = u64::from_le_bytes(rest[nl + 1..nl + 9].try_into().unwrap()) as usize;
                let value = rest[nl + 9..nl + 9 + len].to_vec();
                assert_eq!(rest[nl + 9 + len], b'\n', "a binary-safe value ends in a newline");
                out.push((name_of(line), value));
                rest = &rest[nl + 10 + len..];
            }
        }
    }
    out
}

/// The records sent to `socket` until it is quiet, each as its fields by name (empty datagrams,
/// the programs' probes, left out).
fn journal_records(socket: &std::os::unix::net::UnixDatagram) -> Vec<std::collections::BTreeMap<String, String>> {
    socket.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut out = Vec::new();
    while let Ok(n) = socket.recv(&mut buf) {
        if n > 0 {
            let fields = journal_fields(&buf[..n]);
            out.push(fields.into_iter().map(|(k, v)| (k, String::from_utf8(v).unwrap())).collect());
        }
    }
    out
}

#[test]
fn under_systemd_records_go_to_journald_with_their_fields() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let sock_path = env.path("journal.sock");
    let journal = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    let config = |id: &str| format!(r#"{{"id":"{id}","type":"worker","command":["sleep","1"]}}"#);
    let create = |id: &str, vars: &[(&str, &str)], stderr: std::process::Stdio| {
        let mut c = env.cmd("af-spawn");
        // An invalid event-log setting makes a warning, its message holding a newline.
        c.arg("create").env("AF_EVENTS_KEEP", "two\nthree").stdin(std::process::Stdio::piped());
        c.stdout(std::process::Stdio::piped()).stderr(stderr);
        for (k, v) in vars {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(config(id).as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        out
    };
    use std::io::Write;
    let socket = sock_path.to_str().unwrap();

    // Asked for: the event, with its fields, and the warning, neither on stderr.
    let out =
        create("jw1", &[("AF_LOG_FORMAT", "journald"), ("AF_JOURNAL_SOCKET", socket)], std::process::Stdio::piped());
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    let records = journal_records(&journal);
    let event = records.iter().find(|r| r.get("KIND").map(String::as_str) == Some("agent.created"));
    let event = event.unwrap_or_else(|| panic!("no agent.created record: {records:?}"));
    assert_eq!(event["AGENT_ID"], "jw1", "{event:?}");
    assert_eq!(event["MESSAGE"], "agent.created jw1", "{event:?}");
    assert_eq!(event["PRIORITY"], "6", "{event:?}");
    assert_eq!(event["SYSLOG_IDENTIFIER"], "af-spawn", "{event:?}");
    assert_eq!(event["BY"], "af-spawn", "{event:?}");
    let warning = records.iter().find(|r| r["PRIORITY"] == "4").unwrap_or_else(|| panic!("{records:?}"));
    assert!(warning["MESSAGE"].contains("'two\nthree'"), "the newline is kept: {warning:?}");
    assert_eq!(warning["SYSLOG_IDENTIFIER"], "af-spawn");
    // The spool's log file has the warning as text, and no copy of the event log.
    let log = util::read(&env.home.join("log/af-spawn.log"));
    assert!(log.contains("AF_EVENTS_KEEP") && !log.contains("agent.created"), "{log}");

    // As a systemd service: JOURNAL_STREAM names the stream stderr is.
    let stderr_path = env.path("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    create("jw2", &[("JOURNAL_STREAM", &stream), ("AF_JOURNAL_SOCKET", socket)], stderr.into());
    let records = journal_records(&journal);
    assert!(records.iter().any(|r| r.get("AGENT_ID").map(String::as_str) == Some("jw2")), "{records:?}");
    assert_eq!(util::read(&stderr_path), "", "nothing on stderr");
    // A variable inherited with another stderr (a child whose stderr was redirected) is not the journal.
    let out =
        create("jw3", &[("JOURNAL_STREAM", &stream), ("AF_JOURNAL_SOCKET", socket)], std::process::Stdio::piped());
    assert!(journal_records(&journal).is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AF_EVENTS_KEEP"), "{}", describe(&out));
    // AF_LOG_FORMAT=text wins over the detection.
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    create(
        "jw4",
        &[("JOURNAL_STREAM", &stream), ("AF_JOURNAL_SOCKET", socket), ("AF_LOG_FORMAT", "text")],
        stderr.into(),
    );
    assert!(journal_records(&journal).is_empty());
    assert!(util::read(&stderr_path).contains("AF_EVENTS_KEEP"));

    // journald not there: stderr, as without it, and the program does its work.
    drop(journal);
    std::fs::remove_file(&sock_path).unwrap();
    let out =
        create("jw5", &[("AF_LOG_FORMAT", "journald"), ("AF_JOURNAL_SOCKET", socket)], std::process::Stdio::piped());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("journald is not reachable") && err.contains("AF_EVENTS_KEEP"), "{err}");
    assert_eq!(env.status("jw5"), "created");
}
