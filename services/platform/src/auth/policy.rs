//! The policy table: for every RPC path, the roles allowed to call it and
//! whether it touches patient data. Each service declares its rules
//! ([`ServicePolicy`]); the server merges them into one [`Policy`]. An RPC
//! missing from the table is denied; only health checks are open.

use std::collections::HashMap;

use super::Role;

/// gRPC name of the standard health service: open to everyone (load
/// balancers and probes carry no credentials).
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// gRPC names of server reflection, v1 and v1alpha.
pub const REFLECTION_SERVICES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Who may call one RPC of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The method's name, e.g. `CreatePatient`.
    pub method: &'static str,
    /// The roles allowed to call it.
    pub roles: &'static [Role],
    /// Whether it reads or changes patient data: a purpose of use is then
    /// required, and a denied call is audited.
    pub patient_data: bool,
}

impl Rule {
    /// An RPC that reads or changes patient data.
    pub const fn patient(method: &'static str, roles: &'static [Role]) -> Self {
        Self {
            method,
            roles,
            patient_data: true,
        }
    }

    /// An RPC that touches no patient's data (configuration, catalogues).
    pub const fn other(method: &'static str, roles: &'static [Role]) -> Self {
        Self {
            method,
            roles,
            patient_data: false,
        }
    }
}

/// One service's rules, declared beside its routing table.
#[derive(Debug, Clone, Copy)]
pub struct ServicePolicy {
    /// The fully qualified gRPC service name.
    pub service: &'static str,
    pub rules: &'static [Rule],
}

/// What the table says of one request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open to everyone: health checks (and reflection when configured open).
    Open,
    /// Any authenticated principal with a role: reflection.
    AnyRole,
    /// The rule of an RPC.
    Rule(Rule),
    /// Not in the table: denied.
    Unlisted,
}

/// Every served RPC's rule, by path (`/package.Service/Method`).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: HashMap<String, Rule>,
    open_reflection: bool,
}

impl Policy {
    /// The table of `services`; reflection needs a role unless
    /// `open_reflection` (for development).
    pub fn new<'a>(
        services: impl IntoIterator<Item = &'a ServicePolicy>,
        open_reflection: bool,
    ) -> Self {
        let rules = services
            .into_iter()
            .flat_map(|service| {
                service
                    .rules
                    .iter()
                    .map(move |rule| (format!("/{}/{}", service.service, rule.method), *rule))
            })
            .collect();
        Self {
            rules,
            open_reflection,
        }
    }

    /// What the table says of a request to `path`.
    pub fn lookup(&self, path: &str) -> Access {
        let service = path
            .trim_start_matches('/')
            .split_once('/')
            .map_or("", |(service, _)| service);
        if service == HEALTH_SERVICE {
            return Access::Open;
        }
        if REFLECTION_SERVICES.contains(&service) {
            return if self.open_reflection {
                Access::Open
            } else {
                Access::AnyRole
            };
        }
        self.rules
            .get(path)
            .map_or(Access::Unlisted, |rule| Access::Rule(*rule))
    }

    /// Every path in the table with its rule.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &Rule)> {
        self.rules.iter().map(|(path, rule)| (path.as_str(), rule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServicePolicy = ServicePolicy {
        service: "medsec.test.v1.TestService",
        rules: &[
            Rule::patient("GetThing", &[Role::Clinician]),
            Rule::other("ListThings", &[Role::Admin, Role::Secretary]),
        ],
    };

    #[test]
    fn paths_find_their_rules_and_the_rest_is_denied() {
        let policy = Policy::new([&SERVICE], false);
        assert_eq!(
            policy.lookup("/medsec.test.v1.TestService/GetThing"),
            Access::Rule(SERVICE.rules[0])
        );
        assert_eq!(
            policy.lookup("/medsec.test.v1.TestService/DeleteEverything"),
            Access::Unlisted
        );
        assert_eq!(policy.lookup("/grpc.health.v1.Health/Check"), Access::Open);
        assert_eq!(
            policy.lookup("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Access::AnyRole
        );
        let open = Policy::new([&SERVICE], true);
        assert_eq!(
            open.lookup("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            Access::Open
        );
        assert_eq!(policy.rules().count(), 2);
    }
}
