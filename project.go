package sluice

// DefaultProject owns what is created without a project: by a key outside every
// project's, or by anyone when the API has no keys.
const DefaultProject = "default"

// ProjectName returns p, or DefaultProject when p is "".
func ProjectName(p string) string {
	if p == "" {
		return DefaultProject
	}
	return p
}

// Role is what an API key may do. Values are the config's strings.
type Role string

const (
	// RoleUser sees and changes only its own project's files, uploads and batches.
	RoleUser Role = "user"
	// RoleAdmin sees every project's, and the state of every deployment's quota.
	RoleAdmin Role = "admin"
)

// Caller is who sends an API request: the project of its key and the key's role.
type Caller struct {
	Project string
	Role    Role
}

// Sees reports whether c may read or change an object owned by project p. Objects c
// may not see do not exist for it: the API answers 404, never 403.
func (c Caller) Sees(p string) bool {
	return c.Role == RoleAdmin || ProjectName(c.Project) == ProjectName(p)
}

// ProjectLimits bound what one project may hold at once, beside each deployment's
// quota; 0 means no limit.
type ProjectLimits struct {
	// Batches is the most batches of the project that are not terminal.
	Batches int
	// EnqueuedTokens is the most input tokens the project's batches that are not
	// terminal may hold, across deployments.
	EnqueuedTokens int64
}
