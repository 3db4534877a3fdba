//! The story's PKI as the `mutual` commands that build it: a root CA (`Local Root CA`), role
//! `service`, the www, Alice and Bob certificates under `certs/`, then the Alice and Bob
//! intermediates with roles `alice` and `bob` and a leaf each under `certs/alice/` and
//! `certs/bob/`, and every CA certificate saved as PEM for services to trust. `mutual demo`
//! narrates these commands; the integration tests run them to get the same files.
//!
//! Commands, not an in-process builder: what the demo shows and the tests rely on is what a
//! user typing them gets. Each caller runs them its own way (narrated, asserted, against a
//! server), which is why this module holds no IO.

/// Which CA certificates are saved, and where: `(CA name, file)`.
const CA_FILES: [(&str, &str); 3] = [
    ("root", "certs/root.pem"),
    ("alice", "certs/alice-ca.pem"),
    ("bob", "certs/bob-ca.pem"),
];

/// One `mutual` command of the story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The arguments after `mutual`.
    pub args: Vec<String>,
    /// Where its standard output is saved (`mutual ca cert root > certs/root.pem`), if it is.
    pub stdout_to: Option<&'static str>,
}

impl Step {
    fn run(args: &[&str]) -> Step {
        Step {
            args: args.iter().map(|a| a.to_string()).collect(),
            stdout_to: None,
        }
    }

    fn save_ca(name: &str) -> Step {
        let file = CA_FILES.iter().find(|(ca, _)| *ca == name).map(|(_, f)| *f);
        Step {
            stdout_to: file,
            ..Step::run(&["ca", "cert", name])
        }
    }

    /// The arguments, borrowed, as `Command::args` and the test helpers take them.
    pub fn argv(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// The command's name: `ca init`, `role set`, `issue`, …
    pub fn what(&self) -> String {
        let words = match self.args.first().map(String::as_str) {
            Some("ca" | "role") => 2,
            _ => 1,
        };
        self.args[..words.min(self.args.len())].join(" ")
    }
}

/// The story's PKI, for one key type.
#[derive(Debug, Clone)]
pub struct StoryPki {
    key_type: String,
    urls: Option<(String, String)>,
}

impl StoryPki {
    /// Every CA and certificate of the story with keys of `key_type` (`ec`, `rsa`, `ed25519`).
    pub fn new(key_type: &str) -> StoryPki {
        StoryPki {
            key_type: key_type.to_string(),
            urls: None,
        }
    }

    /// Also set the root's AIA and CRL URLs (`mutual ca urls`) before anything is issued, as
    /// the demo shows. Off by default: a test's certificates should not point at a server.
    pub fn with_urls(mut self, issuing: &str, crl: &str) -> StoryPki {
        self.urls = Some((issuing.to_string(), crl.to_string()));
        self
    }

    /// Chapter one: the root CA, role `service`, the www (server, `localhost`, `127.0.0.1`),
    /// Alice and Bob certificates, and `certs/root.pem`.
    pub fn root(&self) -> Vec<Step> {
        let k = self.key_type.as_str();
        let mut steps = vec![Step::run(&[
            "ca",
            "init",
            "--name",
            "Local Root CA",
            "--key-type",
            k,
        ])];
        if let Some((issuing, crl)) = &self.urls {
            steps.push(Step::run(&[
                "ca",
                "urls",
                "root",
                "--issuing",
                issuing,
                "--crl",
                crl,
            ]));
        }
        steps.push(Step::run(&[
            "role",
            "set",
            "service",
            "--ca",
            "root",
            "--allowed-domains",
            "example.com",
            "--allow-bare-domains",
            "--allow-subdomains",
            "--allow-localhost",
            "--allow-ip-sans",
            "--enforce-hostnames",
            "--max-ttl",
            "720h",
            "--key-type",
            k,
        ]));
        steps.push(Step::run(&[
            "issue",
            "www.example.com",
            "--role",
            "service",
            "--san",
            "localhost",
            "--ip",
            "127.0.0.1",
            "--out",
            "certs",
        ]));
        for who in ["alice", "bob"] {
            steps.push(Step::run(&[
                "issue",
                &format!("{who}.example.com"),
                "--role",
                "service",
                "--out",
                "certs",
            ]));
        }
        steps.push(Step::save_ca("root"));
        steps
    }

    /// The Alice and Bob intermediates under the root, each with its role (`alice`, `bob`),
    /// a leaf (`certs/alice/alice.example.com.crt`: leaf then intermediate) and its
    /// certificate alone in `certs/alice-ca.pem` / `certs/bob-ca.pem`.
    pub fn intermediates(&self) -> Vec<Step> {
        let k = self.key_type.as_str();
        let mut steps = Vec::new();
        for (short, name) in [
            ("alice", "Alice Intermediate Authority"),
            ("bob", "Bob Intermediate Authority"),
        ] {
            steps.push(Step::run(&[
                "ca",
                "intermediate",
                short,
                "--name",
                name,
                "--key-type",
                k,
            ]));
            steps.push(Step::run(&[
                "role",
                "set",
                short,
                "--ca",
                short,
                "--allowed-domains",
                "example.com",
                "--allow-subdomains",
                "--max-ttl",
                "720h",
                "--key-type",
                k,
            ]));
            steps.push(Step::run(&[
                "issue",
                &format!("{short}.example.com"),
                "--role",
                short,
                "--out",
                &format!("certs/{short}"),
            ]));
            steps.push(Step::save_ca(short));
        }
        steps
    }

    /// The whole PKI: [`StoryPki::root`], then [`StoryPki::intermediates`].
    pub fn steps(&self) -> Vec<Step> {
        let mut all = self.root();
        all.extend(self.intermediates());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s.stdout_to {
                Some(f) => format!("{} > {f}", s.args.join(" ")),
                None => s.args.join(" "),
            })
            .collect()
    }

    #[test]
    fn the_story_is_these_commands_in_this_order() {
        let pki = StoryPki::new("rsa").with_urls("http://i", "http://c");
        assert_eq!(
            lines(&pki.steps()),
            [
                "ca init --name Local Root CA --key-type rsa",
                "ca urls root --issuing http://i --crl http://c",
                "role set service --ca root --allowed-domains example.com --allow-bare-domains \
                 --allow-subdomains --allow-localhost --allow-ip-sans --enforce-hostnames \
                 --max-ttl 720h --key-type rsa",
                "issue www.example.com --role service --san localhost --ip 127.0.0.1 --out certs",
                "issue alice.example.com --role service --out certs",
                "issue bob.example.com --role service --out certs",
                "ca cert root > certs/root.pem",
                "ca intermediate alice --name Alice Intermediate Authority --key-type rsa",
                "role set alice --ca alice --allowed-domains example.com --allow-subdomains \
                 --max-ttl 720h --key-type rsa",
                "issue alice.example.com --role alice --out certs/alice",
                "ca cert alice > certs/alice-ca.pem",
                "ca intermediate bob --name Bob Intermediate Authority --key-type rsa",
                "role set bob --ca bob --allowed-domains example.com --allow-subdomains \
                 --max-ttl 720h --key-type rsa",
                "issue bob.example.com --role bob --out certs/bob",
                "ca cert bob > certs/bob-ca.pem",
            ]
        );
    }

    #[test]
    fn urls_are_left_out_unless_asked_and_names_are_short() {
        let steps = StoryPki::new("ec").root();
        assert!(steps.iter().all(|s| s.what() != "ca urls"));
        let whats: Vec<String> = steps.iter().map(Step::what).collect();
        assert_eq!(
            whats,
            ["ca init", "role set", "issue", "issue", "issue", "ca cert"]
        );
    }
}
