package azure

import (
	"fmt"
	"strings"
)

// ParseLocation returns the container and the prefix that a location of the form
// azblob://CONTAINER[/PREFIX] names, as Config wants them. The credentials come from
// elsewhere (Config).
func ParseLocation(loc string) (container, prefix string, err error) {
	rest, ok := strings.CutPrefix(loc, "azblob://")
	if !ok {
		return "", "", fmt.Errorf("blob location %q: want azblob://CONTAINER[/PREFIX]", loc)
	}
	if strings.ContainsAny(rest, "?#") {
		return "", "", fmt.Errorf("blob location %q: no query or fragment is understood; give credentials in the environment", loc)
	}
	container, prefix, _ = strings.Cut(rest, "/")
	if err := checkContainerName(container); err != nil {
		return "", "", fmt.Errorf("blob location %q: %w", loc, err)
	}
	if prefix, err = cleanPrefix(prefix); err != nil {
		return "", "", fmt.Errorf("blob location %q: %w", loc, err)
	}
	return container, prefix, nil
}
