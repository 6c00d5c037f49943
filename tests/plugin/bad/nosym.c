/* A shared object that is not a storage plugin: it lacks the entry symbol. */
int pgkeep_something_else(void);

int pgkeep_something_else(void)
{
	return 42;
}
