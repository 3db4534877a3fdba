use anyhow::Result;
use mutual_pki::{duration, role::Role};

use crate::{
    cli::{RoleCommand, RoleSetArgs},
    output,
};

pub async fn run(target: &super::backend::Target, json: bool, cmd: RoleCommand) -> Result<()> {
    let store = target.open().await?;
    match cmd {
        RoleCommand::Set(a) => {
            let role = role_from_args(a);
            store.put_role(&role).await?;
            if json {
                output::json(&role)
            } else {
                println!("role {} saved (issuer: CA {})", role.name, role.issuer);
                print_role(&role);
                Ok(())
            }
        }
        RoleCommand::List => {
            let roles = store.list_roles().await?;
            if json {
                return output::json(&roles);
            }
            let rows: Vec<Vec<String>> = roles
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.issuer.clone(),
                        r.allowed_domains.join(","),
                        r.max_ttl
                            .map(duration::format)
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::table(&["NAME", "CA", "ALLOWED DOMAINS", "MAX TTL"], &rows);
            Ok(())
        }
        RoleCommand::Show { name } => {
            let role = store.get_role(&name).await?;
            if json {
                output::json(&role)
            } else {
                println!("role {}", role.name);
                print_role(&role);
                Ok(())
            }
        }
    }
}

fn role_from_args(a: RoleSetArgs) -> Role {
    // Without --server/--client, both, as Vault does: the story issues client and server
    // certificates from one role.
    let (server, client) = if !a.server && !a.client {
        (true, true)
    } else {
        (a.server, a.client)
    };
    Role {
        name: a.name,
        issuer: a.ca,
        allowed_domains: a.allowed_domains,
        allow_bare_domains: a.allow_bare_domains,
        allow_subdomains: a.allow_subdomains,
        allow_glob_domains: a.allow_glob_domains,
        allow_localhost: a.allow_localhost,
        allow_any_name: a.allow_any_name,
        allow_wildcards: a.allow_wildcards,
        allow_ip_sans: a.allow_ip_sans,
        enforce_hostnames: a.enforce_hostnames,
        allowed_uri_sans: a.allowed_uri_sans,
        require_cn: !a.no_require_cn,
        server_flag: server,
        client_flag: client,
        key_type: a.key_type,
        key_bits: a.key_bits,
        ttl: a.ttl,
        max_ttl: a.max_ttl,
        ou: a.ou,
        organization: a.organization,
        ..Role::default()
    }
}

fn print_role(r: &Role) {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    println!("  ca                  {}", r.issuer);
    println!("  allowed domains     {}", list(&r.allowed_domains));
    println!("  bare domains        {}", yes(r.allow_bare_domains));
    println!("  subdomains          {}", yes(r.allow_subdomains));
    println!("  glob domains        {}", yes(r.allow_glob_domains));
    println!("  localhost           {}", yes(r.allow_localhost));
    println!("  any name            {}", yes(r.allow_any_name));
    println!("  wildcards           {}", yes(r.allow_wildcards));
    println!("  IP SANs             {}", yes(r.allow_ip_sans));
    println!("  enforce hostnames   {}", yes(r.enforce_hostnames));
    println!("  allowed URI SANs    {}", list(&r.allowed_uri_sans));
    println!(
        "  ttl / max ttl       {} / {}",
        r.ttl.map(duration::format).unwrap_or_else(|| "-".into()),
        r.max_ttl
            .map(duration::format)
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "  key                 {}{}",
        r.key_type,
        if r.key_bits > 0 {
            format!(" {}", r.key_bits)
        } else {
            String::new()
        }
    );
    println!(
        "  usage               {}",
        match (r.server_flag, r.client_flag) {
            (true, true) => "server, client",
            (true, false) => "server",
            (false, true) => "client",
            (false, false) => "none",
        }
    );
}
